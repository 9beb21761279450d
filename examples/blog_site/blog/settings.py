"""Settings of the blog (the parts the fabfile edits)."""
DEBUG = True
ALLOWED_HOSTS = []
ROOT_URLCONF = "blog.urls"
STATIC_URL = "/static/"
