"""Experiments: one config -> a trained, evaluated and documented run folder."""
