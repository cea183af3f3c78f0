"""The shared web base of NXS's server-rendered pages (the customer portal, the operator
console): Jinja2 layout and static assets, server-side sessions of one kind each, CSRF
tokens, argon2 passwords, sign-in rate limiting and a server-side SVG chart.
"""
