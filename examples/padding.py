"""Padding: 'same', 'same_tf' and the padding modes (seeds 000, 004). Run: python examples/padding.py"""
from convlab.examples import padding

padding.run()
