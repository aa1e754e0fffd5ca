import { AuthForm } from "../../src/components/AuthForm.tsx";

export default function SignInPage() {
  return <AuthForm mode="sign-in" />;
}
