"""The one outbound policy: every message, on every channel, from the bot, a timer or an agent,
passes :class:`app.policy.gate.OutboundGate` right before it is sent."""
