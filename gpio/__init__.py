"""The amplifier relay (gpiozero).  The relay driver arrives with the on-air daemon (issue 4)."""
