"""The deploy side: pyinfra operations that make each resource kind so, run per host."""
