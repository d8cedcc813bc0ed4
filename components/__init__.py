"""One ComponentResource per tier of the pipeline, plus the settings they share."""
