"""The read-only GraphQL API over the indexer's tables: api.app.create_app builds the ASGI
application, api.server.run serves it."""
