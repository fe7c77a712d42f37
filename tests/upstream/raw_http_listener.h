#ifndef TESTS_UPSTREAM_RAW_HTTP_LISTENER_H_
#define TESTS_UPSTREAM_RAW_HTTP_LISTENER_H_

// RawHttpListener plays PostHog on a loopback port (port 0) and records every
// request exactly as its bytes arrived: the request line's method and target
// are not decoded or normalised, so a test sees what libcurl really sent.
//
// HTTP/1.1 only, one request per connection (it answers `Connection: close`),
// bodies by Content-Length. Each request is answered by the `answer` function
// given to Start. Thread-safe; Stop (or the destructor) joins its thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace posthog_gateway::test_support {

struct RawRequest {
  std::string method;
  // The request target as sent: "/api/projects/7/persons/?limit=100".
  std::string target;
  // The Authorization header's value ("" when absent).
  std::string authorization;
  std::string body;
};

// What the listener answers.
struct RawAnswer {
  int status = 200;
  std::string body;
};

class RawHttpListener final {
 public:
  using Answer = std::function<RawAnswer(const RawRequest&)>;

  RawHttpListener() = default;
  ~RawHttpListener() { Stop(); }
  RawHttpListener(const RawHttpListener&) = delete;
  RawHttpListener& operator=(const RawHttpListener&) = delete;

  // Start listens on 127.0.0.1, port 0, and returns the port (0 on failure).
  int Start(Answer answer) {
    answer_ = std::move(answer);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return 0;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd_, 64) != 0) {
      return 0;
    }
    socklen_t length = sizeof(address);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
    thread_ = std::thread([this] { Loop(); });
    return ntohs(address.sin_port);
  }

  void Stop() {
    if (fd_ < 0) return;
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);  // Wakes accept.
    if (thread_.joinable()) thread_.join();
    close(fd_);
    fd_ = -1;
  }

  std::vector<RawRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    requests_.clear();
  }

 private:
  void Loop() {
    while (!stopping_) {
      const int connection = accept(fd_, nullptr, nullptr);
      if (connection < 0) {
        if (stopping_) return;
        continue;
      }
      Serve(connection);
      close(connection);
    }
  }

  // Reads until `data` holds `size` bytes or the peer stops sending.
  static bool ReadUntil(int connection, std::string& data, size_t size) {
    char buffer[16384];
    while (data.size() < size) {
      const ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      data.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }

  void Serve(int connection) {
    constexpr size_t kMaxHead = 1 << 20;
    std::string data;
    size_t head_end = std::string::npos;
    char buffer[16384];
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > kMaxHead) return;
      const ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      data.append(buffer, static_cast<size_t>(n));
    }
    RawRequest request;
    const std::string head = data.substr(0, head_end);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
    if (request_line.size() >= 2) {
      request.method = request_line[0];
      request.target = request_line[1];
    }
    size_t content_length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      const std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (name == "content-length") (void)absl::SimpleAtoi(value, &content_length);
      if (name == "authorization") request.authorization = value;
    }
    std::string body = data.substr(head_end + 4);
    if (!ReadUntil(connection, body, content_length)) return;
    request.body = body.substr(0, content_length);
    const RawAnswer answer = answer_(request);
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(std::move(request));
    }
    const std::string response = absl::StrCat(
        "HTTP/1.1 ", answer.status, " X\r\nContent-Type: application/json\r\n",
        "Content-Length: ", answer.body.size(), "\r\nConnection: close\r\n\r\n", answer.body);
    size_t sent = 0;
    while (sent < response.size()) {
      const ssize_t n =
          send(connection, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  Answer answer_;
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<RawRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_UPSTREAM_RAW_HTTP_LISTENER_H_
