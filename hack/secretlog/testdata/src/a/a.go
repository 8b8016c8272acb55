package a

import (
	"fmt"
	"log"

	corev1 "k8s.io/api/core/v1"
)

type creds struct {
	Password         string
	PasswordSecret   string
	ClientToken      string
	TokenPath        string
	SecretAccessKey  []byte
	AccessKeyID      string
	PasswordAttempts int
}

type logger struct{}

func (logger) Info(msg string, kv ...any) {}

func examples(s *corev1.Secret, c creds, password string, l logger) error {
	l.Info("synced", "secret", s)                             // want `a Kubernetes Secret \(s\) reaches Info`
	l.Info("synced", "name", s.Name)                          // a name is not a value
	log.Printf("data %v", s.Data)                             // want `a Secret's Data \(s.Data\) reaches Printf`
	log.Printf("key %s", s.StringData["password"])            // want `a Secret's StringData`
	fmt.Println(c.Password)                                   // want `a credential \(c.Password\) reaches Println`
	fmt.Println(c.PasswordSecret, c.TokenPath)                // names of things that hold one
	fmt.Println(string(c.SecretAccessKey))                    // want `a credential \(c.SecretAccessKey\)`
	fmt.Println(c.AccessKeyID, c.PasswordAttempts)            // an access key's id, a count
	fmt.Println(len(password), password == "x")               // a length and a comparison carry nothing
	log.Print(c.ClientToken)                                  // secretlog:ok: a line that says why it may
	return fmt.Errorf("login as %s failed", "user:"+password) // want `a credential \(password\) reaches Errorf`
}
