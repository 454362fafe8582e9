"""What a person reads: the terminal tables (`terminal`), the Markdown, CSV and JSON files
(`files`), and the HTML report (`html`) with its plots (`plots`)."""
