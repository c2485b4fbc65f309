"""The web dashboard at ``/app``: people (sign-in, roles, invitations), inbox, leads, analytics."""
