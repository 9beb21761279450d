# gunicorn for {{ project }} ({{ site }}), written by the fabfile.
bind = "unix:{{ root }}/gunicorn.sock"
workers = {{ workers }}
{% if site == "production" %}
preload_app = True
{% endif %}
raw_env = ["DJANGO_SETTINGS_MODULE=blog.settings"]
