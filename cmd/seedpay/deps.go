package main

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/chihaya/chihaya/frontend/http"
	_ "github.com/chihaya/chihaya/frontend/udp"
	_ "github.com/chihaya/chihaya/middleware"
	_ "github.com/chihaya/chihaya/storage/memory"
	_ "github.com/fbsobreira/gotron-sdk/pkg/client"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/spf13/cobra"
	_ "go.uber.org/zap"
	_ "gopkg.in/yaml.v3"
)

func main() {}
