"""Every ``keras.applications`` backbone of the installed Keras as a catdog-zoo model; one entry point (module)
per architecture family, each registering its sizes from the table in :mod:`.table` (built by :mod:`.building`)."""
