"""Human handoff: the lead reaches a person, the tenant is told at once, a person answers and hands
back to the bot (:mod:`app.handoff.service`)."""
