#ifndef EMULATOR_PERSONS_HANDLER_H_
#define EMULATOR_PERSONS_HANDLER_H_

// Persons API under `/api/projects/:id/persons/` and
// `/api/environments/:id/persons/` (docs/posthog-api.md §5): list (distinct_id,
// email, search, properties, cohort, limit, offset; absolute next/previous
// URLs), retrieve by numeric id or uuid, DELETE (202, `delete_events`),
// PATCH/PUT properties (202), update_property (202), delete_property (201),
// and POST create (405). Scopes person:read / person:write; persons
// throttles. Thread-safe.

#include "emulator/handler.h"
#include "emulator/person_store.h"
#include "emulator/state.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// PersonListItem renders a person as the list endpoint does (`id` is the
// uuid there); PersonDetail as PersonSerializer does (`id` is the pk).
nlohmann::json PersonListItem(const Person& person);
nlohmann::json PersonDetail(const Person& person);

// HandlePersons serves the collection route (matches[1] = project id).
void HandlePersons(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                   RequestContext& ctx);

// HandlePerson serves `persons/:id/` and its actions (matches[1] = project
// id, matches[2] = person id, matches[3] = action or empty).
void HandlePerson(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                  RequestContext& ctx);

}  // namespace posthog_emulator

#endif  // EMULATOR_PERSONS_HANDLER_H_
