"""A 3x3 input and a 2x2 kernel, by hand (seed 002). Run: python examples/by_hand.py"""
from convlab.examples import by_hand

by_hand.run()
