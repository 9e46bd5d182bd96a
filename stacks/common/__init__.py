"""What every room of the app shares: cdk-nag acknowledgements, physical names, retention."""
