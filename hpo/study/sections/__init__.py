"""One module per section of the study file, each named for the key it reads."""
