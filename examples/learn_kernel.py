"""Learning the kernel [[1, -1]] from data, with the engine's gradient (seed 003).

Run: python examples/learn_kernel.py
"""
from convlab.examples import learn_kernel

learn_kernel.run()
