"""Numba CPU kernels and their Numba CUDA twins. Arrays in, arrays out: no I/O, no
pandas, no torch."""
