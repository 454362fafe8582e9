"""What a sweep leaves on disk and how it reads back: the results folder (`folder`), its trials
ranked (`ranking`), the retrain's records (`records`), and values formatted for people
(`formatting`); a folder in cloud storage (`buckets`) and the local mirror the driver reads and
writes it through (`mirror`). Nothing here imports Ray."""
