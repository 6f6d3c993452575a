"""SMS and call pumping: what the service may send to a customer's number, and the breakers that
stop customer texts and calls when their volume looks like someone is cashing in on it.

`rules` is pure (countries, number types, keys); `service.check` is the one guard every send to
a customer passes just before the provider call (the Messenger's texts, the Bridger's customer
leg, the TwiML reply to a customer's SMS). Staff pages, staff codes and the operators' alerts do
not pass it: their numbers come from the staff directory and the configuration, never from input.
"""
