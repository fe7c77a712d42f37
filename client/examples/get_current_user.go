// Calls the gateway's UserService.GetCurrentUser from Go (grpc-go), with the
// client service config the Kubernetes deployment recommends: round_robin,
// a 10 s timeout and retries of UNAVAILABLE.
//
// Built from Debian's packages in GOPATH mode, offline (tests/polyglot/go/run.sh
// does exactly this):
//
//	protoc -I proto --go_out=$GOPATH/src --go-grpc_out=$GOPATH/src \
//	    $(for f in proto/posthog/v1/*.proto; do r=${f#proto/}; \
//	      echo --go_opt=M$r=example.com/posthog/v1 --go-grpc_opt=M$r=example.com/posthog/v1; done) \
//	    proto/posthog/v1/*.proto
//	GO111MODULE=off GOPATH=$GOPATH:/usr/share/gocode GRPC_GO_RETRY=on \
//	    go run client/examples/get_current_user.go -target=localhost:50051 \
//	    -service_config=deploy/kubernetes/client-service-config.json
//
// grpc-go 1.33 (Debian 12) applies a service config's retryPolicy only with
// GRPC_GO_RETRY=on in the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	posthogv1 "example.com/posthog/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // Client-side health checking (healthCheckConfig).
	"google.golang.org/grpc/status"
)

func main() {
	target := flag.String("target", "localhost:50051", "the gateway's address")
	project := flag.String("project", "", "the project alias; empty for the default project")
	serviceConfig := flag.String("service_config", "deploy/kubernetes/client-service-config.json",
		"a gRPC service config (JSON) file")
	flag.Parse()

	config, err := os.ReadFile(*serviceConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	conn, err := grpc.Dial(*target, grpc.WithInsecure(), grpc.WithDefaultServiceConfig(string(config)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	response, err := posthogv1.NewUserServiceClient(conn).GetCurrentUser(ctx,
		&posthogv1.GetCurrentUserRequest{Project: *project})
	if err != nil {
		st := status.Convert(err)
		fmt.Fprintf(os.Stderr, "error: %s: %s\n", st.Code(), st.Message())
		for _, detail := range st.Details() {
			switch d := detail.(type) {
			case *errdetails.ErrorInfo:
				fmt.Fprintf(os.Stderr, "  reason %s (%s) %v\n", d.Reason, d.Domain, d.Metadata)
			case *errdetails.RetryInfo:
				fmt.Fprintf(os.Stderr, "  retry after %s\n", d.RetryDelay.AsDuration())
			}
		}
		os.Exit(1)
	}
	user := response.User
	fmt.Printf("%s %s <%s>, project %d %q, organization %q\n", user.FirstName, user.LastName,
		user.Email, user.Team.Id, user.Team.Name, user.Organization.Name)
}
