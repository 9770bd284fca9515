"""The live console: a web page of the stats service (index.html, console.js, console.css), the bounded
history it charts (history.py) and its pinned chart library (assets.py, fetched by `make setup`)."""
