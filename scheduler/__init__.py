"""The discovery loop, its memory context and the ``qmind`` command line."""
