package cqrstest

import "time"

// The suite's messages. Their keys name them in failure reports.
type (
	suiteEvent struct {
		Key string `json:"key"`
	}
	suiteOther struct {
		Key string `json:"key"`
	}
	suiteCommand struct {
		Key string `json:"key"`
	}
	suiteQuery struct {
		Key      string        `json:"key"`
		Sleep    time.Duration `json:"sleep"`
		Fail     string        `json:"fail"`
		Deadline bool          `json:"deadline"` // answer with the handler context's deadline
	}
	suiteBlob struct {
		Data string `json:"d"`
	}
)

func (suiteEvent) MessageName() string   { return "SuiteEvent" }
func (suiteOther) MessageName() string   { return "SuiteOther" }
func (suiteCommand) MessageName() string { return "SuiteCommand" }
func (suiteQuery) MessageName() string   { return "SuiteQuery" }
func (suiteBlob) MessageName() string    { return "SuiteBlob" }
