"""The shared vocabulary at the bottom of kgreason: examples, knowledge contexts, batches, outputs, config
bases, errors, atomic I/O, registries and packaged resources. It imports nothing else from kgreason."""
