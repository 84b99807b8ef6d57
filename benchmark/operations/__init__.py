"""Operations over many runs: sweeps and their launchers, submissions, reproduction."""
