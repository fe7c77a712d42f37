#ifndef TESTS_FAKES_DEMO_PROJECT_H_
#define TESTS_FAKES_DEMO_PROJECT_H_

// The gateway configuration most tests need: one project, "demo" (id 7, the
// default), on https://ingest.example and https://app.example, with its
// personal API key ("phx_secret") in a file under ::testing::TempDir().
//
// Flag tests and benchmarks need the project API key too:
// EnvKeyProjectConfig names both keys by environment variable (PHC, PHX)
// and EnvKeys is a KeyStore that answers them without touching the
// environment.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <memory>
#include <optional>

#include "gtest/gtest.h"
#include "server/config/config.h"
#include "server/config/key_store.h"

namespace posthog_gateway::test_support {

inline GatewayConfig DemoProjectConfig() {
  const std::filesystem::path dir = ::testing::TempDir();
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

inline GatewayConfig EnvKeyProjectConfig(const std::string& alias = "demo") {
  ProjectConfig project;
  project.alias = alias;
  project.ingestion_host = "https://ingest.example";
  project.app_host = "https://app.example";
  project.project_api_key.env = "PHC";
  project.personal_api_key.env = "PHX";
  GatewayConfig config;
  config.projects.push_back(project);
  config.default_project = alias;
  return config;
}

// PHC is "phc_token", anything else "phx_personal".
inline std::unique_ptr<KeyStore> EnvKeys(const GatewayConfig& config) {
  return std::make_unique<KeyStore>(config, [](const std::string& name) {
    return std::optional<std::string>(name == "PHC" ? "phc_token" : "phx_personal");
  });
}

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_DEMO_PROJECT_H_
