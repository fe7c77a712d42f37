"""What the demo seed says GetCurrentUser must return, for the polyglot tests.

The facts are read from the seed the emulator serves, never copied into the
tests, so the tests follow the seed when it changes.
"""

import json


def expected_user(seed_path, personal_api_key):
    """Returns the facts about the owner of `personal_api_key` in the seed.

    A dict with the user's uuid, distinct_id, names and email, the current
    team's id, uuid and name, the current organization's id and name, and the
    ids of all the user's organizations (in seed order).
    """
    with open(seed_path, encoding="utf-8") as seed_file:
        seed = json.load(seed_file)
    key = next(k for k in seed["personal_api_keys"] if k["value"] == personal_api_key)
    user = next(u for u in seed["users"] if u["id"] == key["user_id"])
    team = next(p for p in seed["projects"] if p["id"] == user["current_project_id"])
    organizations = {o["id"]: o for o in seed["organizations"]}
    organization = organizations[user["organization_ids"][0]]
    return {
        "uuid": user["uuid"],
        "distinct_id": user["distinct_id"],
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "email": user["email"],
        "team_id": team["id"],
        "team_uuid": team["uuid"],
        "team_name": team["name"],
        "organization_id": organization["id"],
        "organization_name": organization["name"],
        "organization_ids": list(user["organization_ids"]),
    }
