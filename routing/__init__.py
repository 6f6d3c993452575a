"""The sos-router domain: reports, chains, staff, pages and the escalation engine.

Nothing here imports FastAPI, a vendor SDK or the settings; time is always passed in.
"""
