"""Formation: turning logged messages into memories."""
