"""One module per page; each calls ``dash.register_page`` and has ``register_callbacks(app,
services)``. Imported by ``dashboard.app.create_app`` after the Dash app exists."""
