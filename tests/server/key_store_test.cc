#include "server/config/key_store.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_support::ScratchDir("keys"); }

  std::string KeyPath(const std::string& name) const { return (dir_ / name).string(); }

  void WriteKey(const std::string& name, const std::string& value) const {
    // Written and renamed, as the kubelet swaps a secret's files atomically.
    const std::string temp = KeyPath(name) + ".tmp";
    std::ofstream(temp) << value;
    std::filesystem::rename(temp, KeyPath(name));
  }

  GatewayConfig Config() const {
    GatewayConfig config;
    ProjectConfig project;
    project.alias = "demo";
    project.project_id = 1;
    project.personal_api_key.file = KeyPath("personal");
    project.project_api_key.env = "DEMO_PROJECT_KEY";
    config.projects.push_back(project);
    config.default_project = "demo";
    return config;
  }

  KeyStore::EnvReader Env() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(KeyStoreTest, LoadsKeysFromFileAndEnvironmentTrimmingWhitespace) {
  WriteKey("personal", "phx_personal\n");
  env_["DEMO_PROJECT_KEY"] = " phc_project ";

  KeyStore keys(Config(), Env());

  ASSERT_TRUE(keys.AllLoaded());
  EXPECT_EQ(keys.Get("demo", KeyKind::kPersonalApiKey)->value(), "phx_personal");
  EXPECT_EQ(keys.Get("demo", KeyKind::kProjectApiKey)->value(), "phc_project");
}

TEST_F(KeyStoreTest, UnconfiguredKeyIsFailedPrecondition) {
  WriteKey("personal", "phx_personal");
  env_["DEMO_PROJECT_KEY"] = "phc_project";
  KeyStore keys(Config(), Env());

  absl::StatusOr<Secret> secure = keys.Get("demo", KeyKind::kFeatureFlagsSecureKey);

  EXPECT_EQ(secure.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(secure.status().message()),
              HasSubstr("no feature_flags_secure_key configured"));
}

TEST_F(KeyStoreTest, MissingFileIsReportedWithItsPathUntilItAppears) {
  env_["DEMO_PROJECT_KEY"] = "phc_project";
  KeyStore keys(Config(), Env());

  EXPECT_FALSE(keys.AllLoaded());
  absl::StatusOr<Secret> personal = keys.Get("demo", KeyKind::kPersonalApiKey);
  EXPECT_EQ(personal.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(personal.status().message()), HasSubstr(KeyPath("personal")));

  WriteKey("personal", "phx_late");
  EXPECT_TRUE(keys.Reload());
  EXPECT_TRUE(keys.AllLoaded());
  EXPECT_EQ(keys.Get("demo", KeyKind::kPersonalApiKey)->value(), "phx_late");
}

TEST_F(KeyStoreTest, ReloadPicksUpARotatedKeyAndBumpsTheGeneration) {
  WriteKey("personal", "phx_old");
  env_["DEMO_PROJECT_KEY"] = "phc_project";
  KeyStore keys(Config(), Env());
  const uint64_t before = keys.Generation();

  WriteKey("personal", "phx_new");
  EXPECT_TRUE(keys.Reload());

  EXPECT_EQ(keys.Get("demo", KeyKind::kPersonalApiKey)->value(), "phx_new");
  EXPECT_GT(keys.Generation(), before);
  EXPECT_FALSE(keys.Reload());  // Nothing changed since.
}

TEST_F(KeyStoreTest, KeepsTheOldKeyWhenTheNewFileIsEmptyOrGone) {
  WriteKey("personal", "phx_good");
  env_["DEMO_PROJECT_KEY"] = "phc_project";
  KeyStore keys(Config(), Env());

  WriteKey("personal", "  \n");
  EXPECT_FALSE(keys.Reload());
  EXPECT_EQ(keys.Get("demo", KeyKind::kPersonalApiKey)->value(), "phx_good");

  std::filesystem::remove(KeyPath("personal"));
  EXPECT_FALSE(keys.Reload());
  EXPECT_EQ(keys.Get("demo", KeyKind::kPersonalApiKey)->value(), "phx_good");
  EXPECT_TRUE(keys.AllLoaded());
}

TEST_F(KeyStoreTest, UnknownProjectIsFailedPrecondition) {
  WriteKey("personal", "phx_good");
  KeyStore keys(Config(), Env());

  EXPECT_EQ(keys.Get("other", KeyKind::kPersonalApiKey).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SecretTest, PrintsRedacted) {
  std::ostringstream out;
  out << Secret("phx_do_not_print");

  EXPECT_EQ(out.str(), "[redacted]");
  EXPECT_THAT(::testing::PrintToString(Secret("phx_do_not_print")), Not(HasSubstr("do_not_print")));
}

}  // namespace
}  // namespace posthog_gateway
