"""Data: index readers, preparation of real videos, SynthMUSIC, and the mix-and-separate data set."""
