"""Self-supervised methods: each module turns clips into views and features into a loss."""
