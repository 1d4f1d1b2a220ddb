"""One module per page; each has ``register(app, services)``, which calls
``dash.register_page`` and registers the page's callbacks. ``dashboard.app.create_app``
calls them after the Dash app exists; importing a page module has no side effects."""
