"""Content: posts on the way in (validation, the HTML allow-list, dates, slugs), the importers,
and the plain-text reading of HTML. Imports model, errors, config and store only; never a later
stage (site, digest, audience, delivery) nor publish, web or cli."""
