"""The provider port (`base`), the channel registry and the adapters that page staff."""
