"""The site: pages, RSS/Atom/JSON feeds and their RFC 5005 archives, OPML, the digest's web
archive, the incremental build state and WebSub. Imports model, config, output, templating, store,
content and digest (the archive's views of issues); never audience, delivery, publish, web, cli."""
