#include "server/http/curl_http_client.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace posthog_gateway {
namespace {

// A real HTTP server on a loopback port, so the client is tested against the
// network stack it will meet in production.
class CurlHttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/echo", [this](const httplib::Request& request, httplib::Response& response) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        remote_ports_.insert(request.remote_port);
      }
      response.set_header("X-Custom", "yes");
      response.set_content(absl::StrCat("auth=", request.get_header_value("Authorization")),
                           "text/plain");
    });
    server_.Post("/post", [](const httplib::Request& request, httplib::Response& response) {
      response.status = 201;
      response.set_content(absl::StrCat(request.method, ":", request.body), "text/plain");
    });
    server_.Get("/status/429", [](const httplib::Request&, httplib::Response& response) {
      response.status = 429;
      response.set_header("Retry-After", "3");
      response.set_content("slow down", "text/plain");
    });
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& response) {
      release_slow_.WaitForNotificationWithTimeout(absl::Seconds(10));
      response.set_content("late", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the loop starts would be lost; wait for it (bounded).
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(server_.is_running());
  }

  void TearDown() override {
    if (!release_slow_.HasBeenNotified()) release_slow_.Notify();
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  absl::Notification release_slow_;
  std::mutex mu_;
  std::set<int> remote_ports_;
};

TEST_F(CurlHttpClientTest, ReturnsStatusHeadersAndBody) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = Url("/echo");
  request.headers = {{"Authorization", "Bearer phx_test"}};

  absl::StatusOr<HttpResponse> response = client.Send(request);

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(response->body, "auth=Bearer phx_test");
  EXPECT_EQ(response->Header("x-custom"), "yes");
  EXPECT_EQ(response->Header("X-CUSTOM"), "yes");
}

TEST_F(CurlHttpClientTest, NonSuccessStatusIsASuccessfulTransfer) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = Url("/status/429");

  absl::StatusOr<HttpResponse> response = client.Send(request);

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 429);
  EXPECT_EQ(response->Header("retry-after"), "3");
}

TEST_F(CurlHttpClientTest, PostsTheBody) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.method = "POST";
  request.url = Url("/post");
  // Over 1 KiB, where curl would wait for `100 Continue` unless told not to.
  request.body = std::string(4096, 'x');

  absl::StatusOr<HttpResponse> response = client.Send(request);

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 201);
  EXPECT_TRUE(response->body == "POST:" + request.body)
      << "body of " << response->body.size() << " bytes";
}

TEST_F(CurlHttpClientTest, ReusesOneConnectionForSequentialCalls) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = Url("/echo");

  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Send(request).ok());

  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(remote_ports_.size(), 1u);
}

TEST_F(CurlHttpClientTest, ConnectionRefusedIsUnavailable) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = "http://127.0.0.1:1/nothing?token=phc_secret";

  absl::StatusOr<HttpResponse> response = client.Send(request);

  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(response.status().message()).find("phc_secret"), std::string::npos);
}

TEST_F(CurlHttpClientTest, PassedDeadlineIsDeadlineExceededWithoutACall) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = Url("/echo");
  request.deadline = absl::Now() - absl::Seconds(1);

  EXPECT_EQ(client.Send(request).status().code(), absl::StatusCode::kDeadlineExceeded);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(remote_ports_.empty());
}

TEST_F(CurlHttpClientTest, SlowServerHitsTheDeadline) {
  CurlHttpClient client(CurlHttpClientOptions{});
  HttpRequest request;
  request.url = Url("/slow");
  request.deadline = absl::Now() + absl::Milliseconds(200);

  EXPECT_EQ(client.Send(request).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CurlHttpClientTest, CancellationAbandonsTheTransfer) {
  CurlHttpClient client(CurlHttpClientOptions{});
  std::atomic<bool> cancelled{false};
  HttpRequest request;
  request.url = Url("/slow");
  request.is_cancelled = [&cancelled] { return cancelled.load(); };

  std::thread canceller([&cancelled] {
    absl::SleepFor(absl::Milliseconds(100));
    cancelled = true;
  });
  absl::StatusOr<HttpResponse> response = client.Send(request);
  canceller.join();

  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace posthog_gateway
