"""The file formats everything above reads and writes: a run's records (manifest and one record per
generation), a submission and its gallery, and the escaping of text that came from outside.

Below the engine (which writes records) and below the operations and the leaderboard (which read
records and submissions), so every reader and writer shares one definition of each format."""
