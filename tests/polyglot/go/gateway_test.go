// The gateway called from Go (grpc-go 1.33, Debian's packages), with the
// client service config of deploy/kubernetes/client-service-config.json:
// error details decoded, the retry policy honoured, GetCurrentUser, a
// capture batch counted at the emulator, ListPersons read to the end and
// resumed from a token, EvaluateFlags, health, and the example client.
//
// Run by tests/polyglot/go/run.sh, which generates the stubs and sets
// GRPC_GO_RETRY=on. TestMain starts the emulator and the gateway with
// tests/harness/stack.py. The tests run in file order: the error and retry
// test comes first, before GetCurrentUser's short cache holds the user.
package gatewaytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	posthogv1 "example.com/posthog/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const callTimeout = 30 * time.Second

var (
	repoRoot      string
	target        string // The gateway, host:port.
	emulatorURL   string
	serviceConfig string
)

func TestMain(m *testing.M) {
	repoRoot = os.Getenv("POSTHOG_REPO_ROOT")
	if repoRoot == "" || os.Getenv("GRPC_GO_RETRY") != "on" {
		fmt.Fprintln(os.Stderr, "run through tests/polyglot/go/run.sh (POSTHOG_REPO_ROOT, GRPC_GO_RETRY=on)")
		os.Exit(2)
	}
	config, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes/client-service-config.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	serviceConfig = string(config)
	harness, err := startStack()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopStack(harness)
	os.Exit(code)
}

// startStack runs the harness in command mode and waits (bounded) for its
// environment file.
func startStack() (*exec.Cmd, error) {
	dir, err := os.MkdirTemp("", "go-stack-")
	if err != nil {
		return nil, err
	}
	envFile := filepath.Join(dir, "stack.env")
	cmd := exec.Command("/usr/bin/python3", filepath.Join(repoRoot, "tests/harness/stack.py"),
		"--env_file="+envFile)
	cmd.Dir = repoRoot
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("harness exited before serving: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			return nil, fmt.Errorf("harness did not serve within 60 s")
		case <-tick.C:
			file, err := os.Open(envFile)
			if err != nil {
				continue
			}
			scanner := bufio.NewScanner(file)
			for scanner.Scan() {
				if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
					switch k {
					case "GATEWAY_TARGET":
						target = v
					case "EMULATOR_URL":
						emulatorURL = v
					}
				}
			}
			file.Close()
			if target == "" || emulatorURL == "" {
				return nil, fmt.Errorf("environment file without GATEWAY_TARGET or EMULATOR_URL")
			}
			go func() { exited <- <-exited }()
			return cmd, nil
		}
	}
}

func stopStack(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
	}
}

// dial connects with the deployment's service config; retry=false switches
// retries off for this channel only.
func dial(t *testing.T, retry bool) *grpc.ClientConn {
	t.Helper()
	options := []grpc.DialOption{grpc.WithInsecure(), grpc.WithDefaultServiceConfig(serviceConfig)}
	if !retry {
		options = append(options, grpc.WithDisableRetry())
	}
	conn, err := grpc.Dial(target, options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// emulator GETs or POSTs (body != nil) one of the emulator's admin routes and
// decodes its JSON answer into out.
func emulator(t *testing.T, path string, body interface{}, out interface{}) {
	t.Helper()
	var response *http.Response
	var err error
	if body != nil {
		payload, _ := json.Marshal(body)
		response, err = http.Post(emulatorURL+path, "application/json", strings.NewReader(string(payload)))
	} else {
		response, err = http.Get(emulatorURL + path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer response.Body.Close()
	text, _ := io.ReadAll(response.Body)
	if response.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d %s", path, response.StatusCode, text)
	}
	if out != nil {
		if err := json.Unmarshal(text, out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

type routeCounts struct {
	Count  int            `json:"count"`
	Status map[string]int `json:"status"`
}

// usersRequests returns the emulator's counts of GET /api/users/@me/.
func usersRequests(t *testing.T) routeCounts {
	var log struct {
		Routes map[string]routeCounts `json:"routes"`
	}
	emulator(t, "/_emulator/requests?route=users", nil, &log)
	counts := log.Routes["users"]
	if counts.Status == nil {
		counts.Status = map[string]int{}
	}
	return counts
}

func errorInfo(t *testing.T, st *status.Status) *errdetails.ErrorInfo {
	t.Helper()
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("no ErrorInfo in %v", st.Details())
	return nil
}

func TestErrorDetailsAndTheServiceConfigRetryPolicy(t *testing.T) {
	request := &posthogv1.GetCurrentUserRequest{}

	// PostHog answers 503 once. Without retries the caller sees UNAVAILABLE
	// and decodes the ErrorInfo.
	emulator(t, "/_emulator/faults", []map[string]interface{}{
		{"route": "users", "status": 503, "error_rate": 1, "count": 1}}, nil)
	before := usersRequests(t)
	_, err := posthogv1.NewUserServiceClient(dial(t, false)).GetCurrentUser(callContext(t), request)
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("code %v (%v), want UNAVAILABLE", st.Code(), err)
	}
	info := errorInfo(t, st)
	if info.Reason != "UPSTREAM_UNAVAILABLE" || info.Domain != "posthog-gateway" ||
		info.Metadata["http_status"] != "503" {
		t.Fatalf("ErrorInfo %v", info)
	}
	if after := usersRequests(t); after.Count != before.Count+1 {
		t.Fatalf("PostHog was asked %d times, want 1", after.Count-before.Count)
	}

	// 429 with Retry-After: RESOURCE_EXHAUSTED, not retryable under the
	// policy, with RetryInfo and the pushback trailer.
	emulator(t, "/_emulator/faults", []map[string]interface{}{
		{"route": "users", "status": 429, "error_rate": 1, "retry_after_s": 3, "count": 1}}, nil)
	var trailer metadata.MD
	before = usersRequests(t)
	_, err = posthogv1.NewUserServiceClient(dial(t, true)).GetCurrentUser(callContext(t), request,
		grpc.Trailer(&trailer))
	st = status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code %v (%v), want RESOURCE_EXHAUSTED", st.Code(), err)
	}
	var retry *errdetails.RetryInfo
	for _, detail := range st.Details() {
		if r, ok := detail.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.RetryDelay.AsDuration() != 3*time.Second {
		t.Fatalf("RetryInfo %v, want 3s", retry)
	}
	if info := errorInfo(t, st); info.Reason != "UPSTREAM_RATE_LIMITED" {
		t.Fatalf("ErrorInfo %v", info)
	}
	if got := trailer.Get("grpc-retry-pushback-ms"); len(got) != 1 || got[0] != "3000" {
		t.Fatalf("grpc-retry-pushback-ms %v", got)
	}
	if after := usersRequests(t); after.Count != before.Count+1 {
		t.Fatalf("RESOURCE_EXHAUSTED was retried: PostHog asked %d times", after.Count-before.Count)
	}

	// 503 once again, now with the policy's retries: the caller gets the
	// user, and PostHog saw the failed attempt and the retried one.
	emulator(t, "/_emulator/faults", []map[string]interface{}{
		{"route": "users", "status": 503, "error_rate": 1, "count": 1}}, nil)
	before = usersRequests(t)
	response, err := posthogv1.NewUserServiceClient(dial(t, true)).GetCurrentUser(callContext(t), request)
	if err != nil {
		t.Fatalf("with the retry policy: %v", err)
	}
	if response.User.Email == "" {
		t.Fatalf("no user in %v", response)
	}
	after := usersRequests(t)
	if after.Count != before.Count+2 || after.Status["503"] != before.Status["503"]+1 ||
		after.Status["200"] != before.Status["200"]+1 {
		t.Fatalf("PostHog saw %v then %v, want one 503 and one 200 more", before, after)
	}
}

// The seed's user, as stack.keys_from_seed picks its personal key.
type seedUser struct {
	UUID, Email, FirstName, TeamName string
	TeamID                           int64
}

func expectedUser(t *testing.T) seedUser {
	text, err := os.ReadFile(filepath.Join(repoRoot, "emulator/seed/demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seed struct {
		Projects []struct {
			ID             int64  `json:"id"`
			Name           string `json:"name"`
			OrganizationID string `json:"organization_id"`
		} `json:"projects"`
		Users []struct {
			ID               int64    `json:"id"`
			UUID             string   `json:"uuid"`
			Email            string   `json:"email"`
			FirstName        string   `json:"first_name"`
			CurrentProjectID int64    `json:"current_project_id"`
			OrganizationIDs  []string `json:"organization_ids"`
		} `json:"users"`
		PersonalAPIKeys []struct {
			UserID int64    `json:"user_id"`
			Scopes []string `json:"scopes"`
		} `json:"personal_api_keys"`
	}
	if err := json.Unmarshal(text, &seed); err != nil {
		t.Fatal(err)
	}
	project := seed.Projects[0]
	for _, key := range seed.PersonalAPIKeys {
		for _, user := range seed.Users {
			if user.ID != key.UserID || !contains(key.Scopes, "*") || !contains(user.OrganizationIDs, project.OrganizationID) {
				continue
			}
			for _, p := range seed.Projects {
				if p.ID == user.CurrentProjectID {
					return seedUser{user.UUID, user.Email, user.FirstName, p.Name, p.ID}
				}
			}
		}
	}
	t.Fatal("no all-access personal key in the seed")
	return seedUser{}
}

func contains(list []string, item string) bool {
	for _, s := range list {
		if s == item {
			return true
		}
	}
	return false
}

func TestGetCurrentUserReturnsTheSeedUser(t *testing.T) {
	want := expectedUser(t)
	response, err := posthogv1.NewUserServiceClient(dial(t, true)).GetCurrentUser(callContext(t),
		&posthogv1.GetCurrentUserRequest{Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	user := response.User
	got := seedUser{user.Uuid, user.Email, user.FirstName, user.Team.Name, user.Team.Id}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestHealthReadinessIsServing(t *testing.T) {
	response, err := healthpb.NewHealthClient(dial(t, true)).Check(callContext(t),
		&healthpb.HealthCheckRequest{Service: "readiness"})
	if err != nil || response.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%v %v", response, err)
	}
}

func TestBatchCaptureIsDeliveredToPostHog(t *testing.T) {
	distinctID := fmt.Sprintf("go-batch-%d", time.Now().UnixNano())
	var events []*posthogv1.Event
	for i := 0; i < 25; i++ {
		properties, _ := structpb.NewStruct(map[string]interface{}{"index": float64(i), "language": "go"})
		events = append(events, &posthogv1.Event{Event: "go batch", DistinctId: distinctID, Properties: properties})
	}
	response, err := posthogv1.NewCaptureServiceClient(dial(t, true)).BatchCaptureEvents(callContext(t),
		&posthogv1.BatchCaptureEventsRequest{Events: events, AckMode: posthogv1.AckMode_ACK_MODE_DURABLE})
	if err != nil {
		t.Fatal(err)
	}
	if len(response.Uuids) != len(events) {
		t.Fatalf("%d uuids for %d events", len(response.Uuids), len(events))
	}
	// Durable means spooled: delivery follows. Poll the emulator, bounded.
	var stored struct {
		Count  int `json:"count"`
		Events []struct {
			UUID       string                 `json:"uuid"`
			Properties map[string]interface{} `json:"properties"`
		} `json:"events"`
	}
	deadline := time.Now().Add(callTimeout)
	for {
		emulator(t, "/_emulator/events?distinct_id="+distinctID, nil, &stored)
		if stored.Count >= len(events) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // Polling interval, bounded by the deadline.
	}
	var got []string
	for _, event := range stored.Events {
		got = append(got, event.UUID)
		if event.Properties["language"] != "go" {
			t.Fatalf("properties %v", event.Properties)
		}
	}
	want := append([]string(nil), response.Uuids...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("PostHog has %v, want %v", got, want)
	}
}

// readPersons reads a ListPersons stream to its end.
func readPersons(t *testing.T, request *posthogv1.ListPersonsRequest) []*posthogv1.ListPersonsResponse {
	t.Helper()
	stream, err := posthogv1.NewPersonServiceClient(dial(t, true)).ListPersons(callContext(t), request)
	if err != nil {
		t.Fatal(err)
	}
	var messages []*posthogv1.ListPersonsResponse
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			return messages
		}
		if err != nil {
			t.Fatal(err)
		}
		messages = append(messages, message)
	}
}

func uuids(messages []*posthogv1.ListPersonsResponse) []string {
	var all []string
	for _, message := range messages {
		for _, person := range message.Persons {
			all = append(all, person.Uuid)
		}
	}
	return all
}

func TestListPersonsToTheEndAndResumedFromAToken(t *testing.T) {
	emulator(t, "/_emulator/seed", map[string]interface{}{"generate_persons": 250, "project_id": 1}, nil)
	messages := readPersons(t, &posthogv1.ListPersonsRequest{PageSize: 100})
	all := uuids(messages)
	if len(all) < 250 || len(messages) < 3 {
		t.Fatalf("%d persons in %d messages", len(all), len(messages))
	}
	seen := map[string]bool{}
	for _, uuid := range all {
		if seen[uuid] {
			t.Fatalf("person %s twice", uuid)
		}
		seen[uuid] = true
	}
	last := messages[len(messages)-1]
	if last.Progress.ItemsStreamed != int64(len(all)) {
		t.Fatalf("progress %v after %d persons", last.Progress, len(all))
	}

	// Resume right after the first message: the rest of the list, no gap and
	// no repeat, and the progress counts from the start of the list.
	first := len(messages[0].Persons)
	resumed := readPersons(t, &posthogv1.ListPersonsRequest{PageSize: 100, ResumeToken: messages[0].ResumeToken})
	if got := uuids(resumed); strings.Join(got, ",") != strings.Join(all[first:], ",") {
		t.Fatalf("resumed %d persons, want the %d after the first message", len(got), len(all)-first)
	}
	if got := resumed[len(resumed)-1].Progress.ItemsStreamed; got != int64(len(all)) {
		t.Fatalf("resumed progress %d, want %d", got, len(all))
	}
}

func TestEvaluateFlagsLocally(t *testing.T) {
	// Local evaluation needs the definitions; the gateway waits for their
	// first load at start only a bounded while, and FlagService's health
	// entry turns SERVING once they are loaded.
	health := healthpb.NewHealthClient(dial(t, true))
	deadline := time.Now().Add(callTimeout)
	for {
		response, err := health.Check(callContext(t),
			&healthpb.HealthCheckRequest{Service: "posthog.v1.FlagService"})
		if err == nil && response.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FlagService never SERVING: %v %v", response, err)
		}
		time.Sleep(50 * time.Millisecond) // Polling interval, bounded by the deadline.
	}
	properties, _ := structpb.NewStruct(map[string]interface{}{"plan": "pro"})
	response, err := posthogv1.NewFlagServiceClient(dial(t, true)).EvaluateFlags(callContext(t),
		&posthogv1.EvaluateFlagsRequest{
			Keys:    []string{"pro-users", "disabled-flag", "checkout-experiment"},
			Context: &posthogv1.EvaluationContext{DistinctId: "go-user", PersonProperties: properties},
		})
	if err != nil {
		t.Fatal(err)
	}
	pro := response.Results["pro-users"]
	if !pro.Enabled || pro.Reason.Code != posthogv1.FlagReasonCode_FLAG_REASON_CODE_CONDITION_MATCH ||
		pro.Source != posthogv1.FlagDecisionSource_FLAG_DECISION_SOURCE_LOCAL {
		t.Fatalf("pro-users %v", pro)
	}
	disabled := response.Results["disabled-flag"]
	if disabled.Enabled || disabled.Reason.Code != posthogv1.FlagReasonCode_FLAG_REASON_CODE_FLAG_DISABLED {
		t.Fatalf("disabled-flag %v", disabled)
	}
	if variant := response.Results["checkout-experiment"].Variant; variant != "control" && variant != "test" {
		t.Fatalf("checkout-experiment variant %q", variant)
	}
	if len(response.Results) != 3 || response.RequestId == "" {
		t.Fatalf("%v", response)
	}
}

func TestTheExampleClientPrintsTheUser(t *testing.T) {
	want := expectedUser(t)
	command := exec.Command(os.Getenv("GO_EXAMPLE_BINARY"), "-target="+target,
		"-service_config="+filepath.Join(repoRoot, "deploy/kubernetes/client-service-config.json"))
	output, err := command.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, output)
	}
	if !strings.Contains(string(output), "<"+want.Email+">") {
		t.Fatalf("output %q", output)
	}
}
