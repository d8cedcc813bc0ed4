"""What the tests, `make bench` and `make render` run the project on: the program under Pulumi's mock
runtime (stackgraph), the SDK's provider host, a real kube-apiserver, moto, and the data plane on
real processes (dataplane/). Product code never imports it."""
