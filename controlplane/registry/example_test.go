package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "atrax-example")
	defer os.RemoveAll(dir)
	st, err := boltstore.Open(filepath.Join(dir, "atrax.db"), boltstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	ctx := context.Background()
	r, err := registry.Open(ctx, registry.Options{
		Store:    st,
		Config:   []config.Server{{Name: "memory", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-memory"}}},
		OnChange: func() { fmt.Println("changed") },
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	_, _, changes, _, stop := r.Watch()
	defer stop()

	if _, err := r.Create(ctx, &atraxv1.Server{Name: "docs", Url: "https://docs.example.com/mcp"}); err != nil {
		fmt.Println(err)
	}
	c := <-changes
	fmt.Println(c.Event, c.Server.GetName())

	// Servers from the file are changed in the file.
	err = r.Delete(ctx, "memory")
	fmt.Println(errors.Is(err, registry.ErrReadOnly))

	// Stdio servers need controlPlane.allowCommands.
	_, err = r.Create(ctx, &atraxv1.Server{Name: "shell", Command: "bash"})
	fmt.Println(errors.Is(err, registry.ErrCommandNotAllowed))

	list, _ := r.List()
	for _, s := range list {
		fmt.Println(s.GetName(), s.GetSource(), s.GetState())
	}
	// Output:
	// changed
	// created docs
	// true
	// true
	// memory config running
	// docs api running
}
