"""Pure webhook rules: what a subscription may say, how a delivery is built and signed."""
