"""The engine: the generation loop, the guard around plugin hooks, seed streams and run directories."""
