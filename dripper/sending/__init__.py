"""The tick: claim what is due, check it, hand it to its channel, record the outcome; limits, failures, the worker."""
