"""What a sweep leaves on disk and how it reads back: the results folder (`folder`), its trials
ranked (`ranking`), the retrain's records (`records`), and values formatted for people
(`formatting`). Nothing here imports Ray."""
