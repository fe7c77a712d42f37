#ifndef TESTS_FAKES_DEMO_PROJECT_H_
#define TESTS_FAKES_DEMO_PROJECT_H_

// The gateway configuration most tests need: one project, "demo" (id 7, the
// default), on https://ingest.example and https://app.example, with its
// personal API key ("phx_secret") in a file under $TEST_TMPDIR.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "server/config/config.h"

namespace posthog_gateway::testing {

inline GatewayConfig DemoProjectConfig() {
  const std::filesystem::path dir = std::getenv("TEST_TMPDIR");
  const std::string key_path = (dir / "personal_api_key").string();
  std::ofstream(key_path) << "phx_secret";
  ProjectConfig project;
  project.alias = "demo";
  project.project_id = 7;
  project.ingestion_host = "https://ingest.example";
  project.app_host = "https://app.example";
  project.personal_api_key.file = key_path;
  GatewayConfig config;
  config.projects.push_back(project);
  config.default_project = "demo";
  return config;
}

}  // namespace posthog_gateway::testing

#endif  // TESTS_FAKES_DEMO_PROJECT_H_
