"""
The experiments: training ConvMixer on CIFAR-10 and the speed settings it uses.
"""
