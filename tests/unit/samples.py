"""Small workflow texts shared by the unit tests."""

MINIMAL = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
fields:
  cause: {type: text}
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
"""
